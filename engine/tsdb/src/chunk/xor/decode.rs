//! Decoding the chunk stream: [`XorIter`], [`decode`], and [`scan`], which checks a whole
//! stream for the frame reader and for [`super::XorEncoder::resume`].
//!
//! The decoder reads each code in the context the stream is in and moves the shared [`State`]
//! through the same transitions the encoder applies (`State::step_time`, `Values::step_decimal`
//! and the others in `super`), so both sides agree on every prediction by construction. Its
//! fast paths are a sample inside a run (no bits at all) and context C's on-grid short code.

use super::bits::{BitReader, sign_extend};
use super::*;

/// Iterates the samples of a chunk stream.
///
/// Stops early, setting [`XorIter::err`], when the stream is malformed or ends before
/// `num_samples` samples; samples yielded before that were decoded from valid bits.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    reader: BitReader<'a>,
    state: State,
    /// Samples of the current run not yet yielded.
    run_left: u32,
    /// The last run read, while no other code follows it: what `resume` continues.
    open_run: Option<RunRead>,
    /// Samples decoded so far.
    read: u16,
    /// `state.v` is behind: decimal mode's value is to be computed from `state.values`.
    v_pending: bool,
    /// Samples the stream is said to hold.
    num_samples: u16,
    err: Option<ChunkError>,
}

impl<'a> XorIter<'a> {
    /// Iterates `num_samples` samples from `data`.
    pub fn new(data: &'a [u8], num_samples: u16) -> Self {
        XorIter {
            reader: BitReader::new(data),
            state: State::EMPTY,
            run_left: 0,
            open_run: None,
            read: 0,
            v_pending: false,
            num_samples,
            err: None,
        }
    }

    /// Samples decoded so far.
    pub fn decoded(&self) -> u16 {
        self.read
    }

    /// Decodes `n` samples without computing their values; false if the stream ended first.
    #[inline]
    pub fn skip_samples(&mut self, n: u16) -> bool {
        (0..n).all(|_| self.advance())
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
        self.run_left = 0;
        None
    }

    /// Brings `state.v` up to date.
    #[inline(always)]
    fn settle_value(&mut self) {
        if self.v_pending {
            self.state.v = self.state.values.decimal_bits();
            self.v_pending = false;
        }
    }

    /// The sample [`XorIter::advance`] reached.
    #[inline(always)]
    fn current(&mut self) -> (i64, f64) {
        self.settle_value();
        (self.state.t, f64::from_bits(self.state.v))
    }

    /// Decodes the next sample into `state`, its value perhaps left pending; false at the
    /// end of the stream or on damage (then recorded).
    #[inline(always)]
    fn advance(&mut self) -> bool {
        if self.read >= self.num_samples {
            return false;
        }
        let result = if self.run_left > 0 {
            self.run_left -= 1;
            self.step_run()
        } else if self.read < 2 {
            self.read_head()
        } else {
            self.read_record()
        };
        match result {
            Ok(()) => {
                self.read += 1;
                true
            }
            Err(expected) => {
                self.fail(expected);
                false
            }
        }
    }

    /// The first sample at or after `t`, the ones before it decoded without their values
    /// (what a range that starts inside a chunk skips); `None` when none is left.
    #[inline]
    pub fn next_from(&mut self, t: i64) -> Option<(i64, f64)> {
        while self.advance() {
            if self.state.t >= t {
                return Some(self.current());
            }
        }
        None
    }

    /// Decodes sample 0, or sample 1's interval and record.
    #[cold]
    #[inline(never)]
    fn read_head(&mut self) -> Result<(), &'static str> {
        if self.read == 0 {
            self.read_first()
        } else {
            let interval = self.read_interval()?;
            self.state.interval = interval;
            self.state.late = 0;
            self.read_record()
        }
    }

    fn read_first(&mut self) -> Result<(), &'static str> {
        let r = &mut self.reader;
        self.state.t = unzigzag(r.read_varint()?);
        let decimal = r.read(1).ok_or("the first value, but the stream ended")?;
        if decimal == 0 {
            self.state.v = r
                .read_wide(64)
                .ok_or("the first value's 64 bits, but the stream ended")?;
            return Ok(());
        }
        let (exp, shift) = self.read_decimal_header()?;
        let m = unzigzag(self.reader.read_wide_int()?);
        self.state.v = self.state.values.start_decimal(exp, shift, m);
        Ok(())
    }

    fn read_interval(&mut self) -> Result<u64, &'static str> {
        let exp = self
            .reader
            .read(INTERVAL_EXPONENT_BITS)
            .ok_or("an interval, but the stream ended")?;
        let mantissa = self.reader.read_varint()?;
        Ok(mantissa.wrapping_mul(10u64.pow(exp as u32)))
    }

    fn read_decimal_header(&mut self) -> Result<(u32, u32), &'static str> {
        const END: &str = "a decimal header, but the stream ended";
        if self.reader.read(1).ok_or(END)? == 0 {
            return Ok((0, 0));
        }
        let header = self.reader.read(EXPONENT_BITS + SHIFT_BITS).ok_or(END)?;
        let exp = (header >> SHIFT_BITS) as u32;
        if exp > EXPONENT_MAX {
            return Err("a decimal exponent of at most 22");
        }
        Ok((exp, (header & ((1 << SHIFT_BITS) - 1)) as u32))
    }

    /// Decodes the record of one sample (not one inside a run) into `self.state`.
    #[inline(always)]
    fn read_record(&mut self) -> Result<(), &'static str> {
        match self.state.context {
            Context::Change => self.read_change(),
            Context::Break => self.read_break(),
            Context::Run => self.read_run(),
        }
    }

    #[inline(always)]
    fn read_change(&mut self) -> Result<(), &'static str> {
        let r = &mut self.reader;
        if !r.ensure(2 + LATE_BITS) {
            return self.read_change_slow();
        }
        if r.buf() >> 63 == 0 {
            r.consume(1);
            self.state.step_time(0)?;
            return self.read_short();
        }
        if r.buf() >> 62 == 0b10 {
            let late = (r.buf() << 2 >> (64 - LATE_BITS)) as i64 + 1;
            r.consume(2 + LATE_BITS);
            self.state.step_time(late)?;
            return self.read_short();
        }
        r.consume(2);
        self.read_general()
    }

    #[cold]
    #[inline(never)]
    fn read_change_slow(&mut self) -> Result<(), &'static str> {
        const END: &str = "a record, but the stream ended";
        let r = &mut self.reader;
        if r.read(1).ok_or(END)? == 0 {
            self.state.step_time(0)?;
            return self.read_short();
        }
        if r.read(1).ok_or(END)? == 0 {
            let late = r.read(LATE_BITS).ok_or(END)? as i64 + 1;
            self.state.step_time(late)?;
            return self.read_short();
        }
        self.read_general()
    }

    fn read_break(&mut self) -> Result<(), &'static str> {
        const END: &str = "a record, but the stream ended";
        self.open_run = None;
        let late = self.reader.read(LATE_BITS).ok_or(END)? as i64;
        if late == 0 {
            if self.reader.read(1).ok_or(END)? == 1 {
                return self.read_general();
            }
            self.state.step_time(0)?;
            return self.read_short();
        }
        self.state.step_time(late)?;
        self.state.context = Context::Run;
        Ok(())
    }

    /// Reads a run code; yields its first sample, or reads the record after an empty run.
    fn read_run(&mut self) -> Result<(), &'static str> {
        let start_bit = self.reader.bit_pos();
        let k = RUN_K;
        let r = &mut self.reader;
        // At most 16 zeros and 19 bits of number: all in one refill.
        r.ensure(2 * RUN_ZEROS_MAX + RUN_K + 1);
        let zeros = r.buf().leading_zeros();
        if zeros > RUN_ZEROS_MAX {
            return Err("a run code of at most 16 leading zeros");
        }
        let b = zeros + k + 1;
        if zeros + b > r.avail() {
            return Err("a run length, but the stream ended");
        }
        let x = (r.buf() << zeros) >> (64 - b);
        r.consume(zeros + b);
        let n = (x - (1 << k)) as u32;
        self.state.context = Context::Break;
        if n == 0 {
            return self.read_break();
        }
        self.open_run = Some(RunRead { start_bit, len: n });
        self.run_left = n - 1;
        self.step_run()
    }

    /// Moves to the next sample of a run.
    #[inline(always)]
    fn step_run(&mut self) -> Result<(), &'static str> {
        let t = self.state.predicted_t();
        if t <= self.state.t {
            return Err(ERR_ORDER);
        }
        self.state.t = t;
        self.state.late = 0;
        self.state.escaped = false;
        Ok(())
    }

    fn read_general(&mut self) -> Result<(), &'static str> {
        self.read_time()?;
        self.read_value()
    }

    fn read_time(&mut self) -> Result<(), &'static str> {
        const END: &str = "a timestamp code, but the stream ended";
        let r = &mut self.reader;
        r.ensure(3);
        // Bits past `avail` are zero, so the count of ones never runs past the stream.
        let ones = (!r.buf()).leading_zeros().min(3);
        let prefix_bits = (ones + 1).min(3);
        if prefix_bits > r.avail() {
            return Err(END);
        }
        r.consume(prefix_bits);
        let residual = match ones {
            0 => 0,
            1 => sign_extend(r.read(SMALL_BITS).ok_or(END)?, SMALL_BITS),
            2 => sign_extend(r.read(MEDIUM_BITS).ok_or(END)?, MEDIUM_BITS),
            _ => {
                let delta = r.read_varint()?;
                let adjust = match r.read(1).ok_or(END)? {
                    0 => None,
                    _ => {
                        let a = sign_extend(r.read(ADJUST_BITS).ok_or(END)?, ADJUST_BITS);
                        Some(delta.wrapping_add(a as u64))
                    }
                };
                return self.state.step_escape(delta, adjust);
            }
        };
        self.state.step_time(residual)
    }

    fn read_value(&mut self) -> Result<(), &'static str> {
        const END: &str = "a value code, but the stream ended";
        // A new mode or window starts from the previous value's bits (a general record is
        // rare, so computing them here costs little even when a run follows).
        self.settle_value();
        let r = &mut self.reader;
        if r.read(1).ok_or(END)? == 0 {
            self.state.context = Context::Run;
            return Ok(());
        }
        if r.read(1).ok_or(END)? == 0 {
            return self.read_short();
        }
        let decimal = r.read(1).ok_or(END)? == 1;
        self.state.context = Context::Change;
        let prev = self.state.v;
        if decimal {
            let (exp, shift) = self.read_decimal_header()?;
            let z = self.reader.read_wide_int()?;
            self.state.v = self.state.values.enter_decimal(prev, exp, shift, z);
            return Ok(());
        }
        let header = r
            .read(WINDOW_HEADER_BITS)
            .ok_or("a value window header, but the stream ended")?;
        let leading = (header >> 6) as u32;
        let sig = (header & 0x3f) as u32 + 1;
        if leading + sig > 64 {
            return Err("a value window of at most 64 bits");
        }
        let window = Window::new(leading, sig);
        let payload = r
            .read_wide(sig)
            .ok_or("a value's significant bits, but the stream ended")?;
        let values = &mut self.state.values;
        values.decimal = false;
        values.window = window;
        self.state.v = prev ^ (payload << window.trailing());
        Ok(())
    }

    /// Decodes a short value code: the value changed.
    #[inline(always)]
    fn read_short(&mut self) -> Result<(), &'static str> {
        self.state.context = Context::Change;
        let values = &mut self.state.values;
        let r = &mut self.reader;
        if !values.decimal {
            let window = values.window;
            let payload = r
                .read_wide(window.sig())
                .ok_or("a value's significant bits, but the stream ended")?;
            self.state.v ^= payload << window.trailing();
            return Ok(());
        }
        let k = values.rice_k();
        r.ensure(56);
        let ones = (!r.buf()).leading_zeros();
        let (z, escaped) = if ones < RICE_ESCAPE_ONES && ones + 1 + k <= r.avail().min(56) {
            let low = (r.buf() << (ones + 1)).checked_shr(64 - k).unwrap_or(0);
            r.consume(ones + 1 + k);
            ((u64::from(ones) << k) | low, false)
        } else {
            Self::read_rice_slow(r, k)?
        };
        values.advance_decimal(z, escaped);
        self.v_pending = true;
        Ok(())
    }

    /// A Rice code that does not fit the bit buffer, runs past the end of the stream, or
    /// escapes to a raw integer.
    #[cold]
    #[inline(never)]
    fn read_rice_slow(r: &mut BitReader<'_>, k: u32) -> Result<(u64, bool), &'static str> {
        const END: &str = "a value code, but the stream ended";
        let mut q = 0;
        while r.read(1).ok_or(END)? == 1 {
            q += 1;
            if q == RICE_ESCAPE_ONES {
                return Ok((r.read_wide_int()?, true));
            }
        }
        let low = r.read_wide(k).ok_or(END)?;
        Ok((u64::from(q).wrapping_shl(k) | low, false))
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if self.advance() {
            Some(self.current())
        } else {
            None
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.num_samples - self.read)))
    }
}

/// Decodes `num_samples` samples from `data`, appending them to `out`.
///
/// Reserves room for `num_samples` samples when `data` is not empty (a run lets a few bytes
/// hold a whole chunk, so the count bounds the allocation: at most 1 MiB).
///
/// # Errors
///
/// [`ChunkError::CorruptStream`] if the stream is malformed or ends before `num_samples`
/// samples; `out` then keeps the samples decoded before the failure. Bytes after the last
/// sample are not read.
pub fn decode(data: &[u8], num_samples: u16, out: &mut Vec<(i64, f64)>) -> Result<(), ChunkError> {
    if !data.is_empty() {
        out.reserve_exact(usize::from(num_samples));
    }
    let mut iter = XorIter::new(data, num_samples);
    out.extend(iter.by_ref());
    match iter.err {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// A run code the decoder read: where it starts and how many samples it stands for.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunRead {
    pub(super) start_bit: u64,
    pub(super) len: u32,
}

/// What [`scan`] learns from a complete, well-formed stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamEnd {
    num_samples: u16,
    pub(super) first_t: i64,
    pub(super) state: State,
    pub(super) open_run: Option<RunRead>,
    pub(super) bit_len: u64,
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

/// Decodes the whole stream, and checks that it ends with its last sample: no run goes past
/// it, and nothing but zero padding follows it.
pub(crate) fn scan(data: &[u8], num_samples: u16) -> Result<StreamEnd, ChunkError> {
    let mut iter = XorIter::new(data, num_samples);
    let first_t = iter.next().map_or(0, |(t, _)| t);
    for _ in iter.by_ref() {}
    if let Some(err) = iter.err {
        return Err(err);
    }
    iter.settle_value();
    let bit_len = iter.reader.bit_pos();
    let corrupt = |expected| ChunkError::CorruptStream {
        bit_offset: bit_len,
        expected,
    };
    if iter.run_left > 0 {
        return Err(corrupt("a run that ends at the last sample"));
    }
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
        open_run: iter.open_run,
        bit_len,
    })
}
